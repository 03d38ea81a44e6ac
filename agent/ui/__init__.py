"""The live web page (``labpilot serve-ui``, ``labpilot run --ui``): FastAPI + uvicorn over the store,
updates pushed as Server-Sent Events, approvals through ``agent/approval.py``."""
