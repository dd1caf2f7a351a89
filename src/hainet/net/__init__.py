"""Identity, signed records, the DHT, validation by other hubs, federated learning."""
