"""``transparency`` / ``python -m transparency``: the only place errors become exit codes.

Imports happen inside ``main``: worker processes (spawned) import this module again as
their ``__main__``, and must not pay for the whole service's imports in memory.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import asyncpg

    from transparency.db.migrate import MigrationError
    from transparency.runtime.settings import SettingsError
    from transparency.serve.cli import CliError, run

    try:
        run(argv)
    except SettingsError as exc:
        print(f"transparency: invalid setting {exc}", file=sys.stderr)
        return 2
    except (CliError, MigrationError) as exc:
        print(f"transparency: {exc}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"transparency: the database cannot be used: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
