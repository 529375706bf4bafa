"""Operations: alerts, the dependency probes of `relay check`, Redis connections."""
