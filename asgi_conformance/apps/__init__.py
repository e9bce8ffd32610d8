"""Scenario apps: the plain ASGI 3 code that runs *inside* the server under test.

Everything under this package imports only the standard library (no pytest, no
framework), so it runs unchanged under any server and any async library the server
uses (asyncio, uvloop, trio).
"""
