"""Local stack launcher: real PostgreSQL, Kafka-protocol and DynamoDB-protocol servers on loopback."""
