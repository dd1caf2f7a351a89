"""HyperAgents: self-improving agents with an archive, a meta agent and human control."""
