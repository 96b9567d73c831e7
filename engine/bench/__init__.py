"""The bench: measures invisibility, robustness against the attack suite, and speed, for our
model and the peer watermarkers (``faketagger bench``). A front end over the core: it may use the
core's parts directly (it measures them), but the core never imports it.
"""
