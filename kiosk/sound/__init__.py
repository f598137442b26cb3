"""Tones and spoken prompts: what the kiosk says out loud, and how it gets to the speaker.

``prompts`` maps what the screen shows to what is said (in the screen's own words), ``clips``
renders the spoken sentences once with espeak-ng, ``tones`` makes the PASS / REFUSE tones,
``player`` plays them off the screen loop, ``voice`` listens to the kiosk's screen states and
``attach`` puts it all on a kiosk.
"""
