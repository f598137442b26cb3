"""Everything the visitor sees and hears: the screen, the lights, the buzzer and the gate relay."""
