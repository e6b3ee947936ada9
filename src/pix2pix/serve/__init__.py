"""Web service: `pix2pix serve RUN_DIR` (FastAPI + uvicorn, the optional `serve` extra)."""
