"""The Ray actors: players and the registry. Thin: they carry out what arena/ and genome/ decide."""
