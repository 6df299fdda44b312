"""Order status service: async gRPC, CQRS over PostgreSQL, Kafka and DynamoDB."""
