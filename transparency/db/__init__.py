"""Everything that speaks SQL: the pool, the migrations and one module of queries per noun.

May import ``transparency.domain`` only. Functions take a connection or pool and return
domain records (frozen dataclasses), never ``asyncpg.Record``.
"""
