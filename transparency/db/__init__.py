"""Everything that speaks SQL: the pool, the migrations and one module of queries per noun."""
