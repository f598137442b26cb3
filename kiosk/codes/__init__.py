"""Health-code verification: one module per scheme, each feeding a CodeResult.

router.py sends each scanned code to its scheme (platform.py online; dcc.py and shc.py offline
against the trust list of trust.py / trustlist.py) and applies the checks around them all
(replay.py, clock.py). See docs/codes.md.
"""
