"""Every way the kiosk senses the world: the thermometer and the camera, and what reads them."""
