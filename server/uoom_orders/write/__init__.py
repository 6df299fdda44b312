"""Write model on PostgreSQL: migrations, unit of work, repository, outbox."""
