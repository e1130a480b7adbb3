"""The live view's window: a resizable OpenCV window and what its keys mean.

Keys: ``q``/ESC quit, space pauses (and, on a held image, goes on), ``n``/Enter/right
arrow go on to the next image, ``s`` saves a snapshot, ``f`` toggles full screen.
Closing the window quits too. Every wait polls in short steps, so a signal (Ctrl-C,
SIGTERM) is answered within a fraction of a second even while a frame is held.
"""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np

log = logging.getLogger(__name__)

TITLE = "realtime digits (q quit, space pause/next, f full screen, s snapshot)"
POLL_MS = 50  # one step of every wait: how soon a signal or a closed window is noticed

# What waitKeyEx returns for the arrow keys under each highgui backend (GTK, Qt, Win32).
RIGHT_ARROWS = frozenset({65363, 0x1000014, 2555904})
DOWN_ARROWS = frozenset({65364, 0x1000015, 2621440})
QUIT, NEXT, PAUSE, SNAPSHOT = "quit", "next", "pause", "snapshot"


def action_of(key: int) -> str | None:
    """The action a key code from ``cv2.waitKeyEx`` asks for (None: no key or another)."""
    if key < 0:
        return None
    if key in RIGHT_ARROWS or key in DOWN_ARROWS:
        return NEXT
    if key > 0xFF:
        return None
    ch = key & 0xFF
    if ch in (ord("q"), ord("Q"), 27):
        return QUIT
    if ch == ord(" "):
        return PAUSE
    if ch in (ord("n"), 13, 10):
        return NEXT
    if ch == ord("s"):
        return SNAPSHOT
    if ch == ord("f"):
        return "fullscreen"
    return None


class Window:
    """One resizable window (its aspect ratio kept) that shows BGR frames."""

    def __init__(self, title: str = TITLE, size: tuple[int, int] | None = None) -> None:
        self.title = title
        self.fullscreen = False
        flags = cv2.WINDOW_NORMAL | getattr(cv2, "WINDOW_KEEPRATIO", 0)
        cv2.namedWindow(title, flags)
        if size is not None:
            cv2.resizeWindow(title, int(size[0]), int(size[1]))
        self._shown = False

    def show(self, image: np.ndarray) -> None:
        cv2.imshow(self.title, image)
        self._shown = True

    def closed(self) -> bool:
        """Whether the user closed the window (its close button)."""
        if not self._shown:
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def toggle_fullscreen(self) -> None:
        self.fullscreen = not self.fullscreen
        cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN,
                              cv2.WINDOW_FULLSCREEN if self.fullscreen else cv2.WINDOW_NORMAL)
        # (a window manager does the resizing: a bare X server only records the wish)
        log.info("window: full screen %s", "on" if cv2.getWindowProperty(
            self.title, cv2.WND_PROP_FULLSCREEN) == cv2.WINDOW_FULLSCREEN else "off")

    def poll(self, wait_ms: int = 1) -> str | None:
        """Wait up to ``wait_ms`` for a key; returns its action (full screen is handled here)."""
        end = time.monotonic() + max(1, wait_ms) / 1000.0
        while True:
            step = max(1, min(POLL_MS, int((end - time.monotonic()) * 1000)))
            action = action_of(cv2.waitKeyEx(step))
            if action == "fullscreen":
                self.toggle_fullscreen()
                action = None
            if action is None and self.closed():
                return QUIT
            if action is not None or time.monotonic() >= end:
                return action

    def hold(self) -> str:
        """Keep the shown frame until a key asks to go on (``next``) or to quit; a
        snapshot request is returned too, so the caller can save and hold again."""
        while True:
            action = self.poll(POLL_MS)
            if action in (QUIT, NEXT, SNAPSHOT):
                return action
            if action == PAUSE:
                return NEXT

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)  # lets the GUI thread take the window down
        except cv2.error:
            pass
