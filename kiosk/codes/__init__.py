"""Health-code verification: one module per scheme, each feeding a CodeResult.

router.py sends each scanned code to its scheme (platform.py online; the offline schemes listed in
offline.py, dcc.py and shc.py, against the trust list of trust.py / trustlist.py) and applies the
checks around them all (replay.py, clock.py). See docs/codes.md.
"""
