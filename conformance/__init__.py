"""Conformance suite for the NetworkPolicies that GitGuardian self-hosted (GIM) renders from its values."""
