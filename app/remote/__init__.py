"""The engine across a network: ``main.py serve`` hosts a live engine for one remote client at a time
(``server.py``), and ``client.py`` is an engine with the local engine's surface that drives it. Video
travels both ways over WebRTC (aiortc), commands and stats over a data channel; signalling is one
HTTP request (aiohttp, ``POST /offer``) carrying a bearer token."""
