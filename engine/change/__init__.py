"""What was done to a tagged face: unchanged, edited or replaced (issue #20).

A tag says whose photo a face came from; its signed record keeps the face as it was tagged (a
thumbnail, and for one's own tags the original photo is on disk). Comparing the two answers the
second question a fact-checker asks: identity (dlib's 128-D descriptor), geometry (68 landmarks:
expression and pose) and appearance after alignment. Layers: `models` loads dlib's files from
package data, `measure` turns a pair of faces into numbers, `verdict` turns numbers into a
`FaceChange`, `reference` finds the face to compare with.
"""
