"""The web app: ``python -m realtime.web`` serves one page with three tabs (draw digits on
a canvas, read them from the browser's webcam, upload an image or a short video) and
its HTTP/WebSocket API, all from this package (no CDN: it works offline).

The server is :mod:`realtime.web.app` (FastAPI on uvicorn), the recognizers it shares
among clients are lent by :mod:`realtime.web.pool`, and the page is ``static/``.
"""
