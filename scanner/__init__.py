"""Decode QR and GS1 DataMatrix codes from images and verify them through the API."""
