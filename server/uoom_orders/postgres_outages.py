"""Which PostgreSQL failures are the database's state rather than the request's: a caller may
send the same request again later, and a role retries it without a traceback in its log.

- The connection is gone or refused (class 08, asyncpg's InterfaceError, OSError, timeouts).
- An operator or the server ended the session or is not taking work (class 57: a fast or
  immediate shutdown, the crash of another backend, `pg_terminate_backend`, a statement
  timeout, a server still starting or recovering).
- The server is out of resources (class 53: too many connections, a full disk, no memory).
- The transaction was rolled back to resolve a conflict (class 40: a deadlock, a serialization
  failure): nothing of it was written.
- The session is on a read-only server (25006): after a failover, until the address points at
  the new primary.

Every other error is the service's own fault and is reported as one.
"""

from __future__ import annotations

import asyncpg

POSTGRES_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
)
