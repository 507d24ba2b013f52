"""A stand-in server: loads the built app and prints a greeting every second."""

import sys
import time

sys.path.insert(0, "build")
import app

sys.stdout.write(f"serving: {app.greet('world')}\n")
while True:
    time.sleep(1)
