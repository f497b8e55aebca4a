"""Helpers and fixture modules shared by the test tiers; no test lives here."""
