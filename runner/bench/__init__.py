"""``dsrun bench``: capacity of a config on this machine (:mod:`runner.bench.capacity`), the
replicated configs it runs (:mod:`.streams`), one measured run (:mod:`.measure`), utilisation and
bound (:mod:`.utilisation`), and the decode / engine ceilings (:mod:`.ceilings`)."""
