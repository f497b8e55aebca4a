"""Thin routes: parse, call one service function, return a schema."""
