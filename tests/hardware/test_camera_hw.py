"""On the Pi: the camera delivers grayscale frames of the configured size, with some light in them."""

import numpy as np

from kiosk.sensors.camera import Picamera2Source


def test_camera_delivers_frames():
    camera = Picamera2Source(640, 480, 15)
    try:
        frames = [camera.read() for _ in range(10)]
    finally:
        camera.close()
    frames = [f for f in frames if f is not None]
    assert frames, "no frame in 10 reads"
    assert frames[-1].shape == (480, 640) and frames[-1].dtype == np.uint8
    assert 5 < float(frames[-1].mean()) < 250, "the frame is all black or all white: lens cap, or no light?"
