"""Where objects are applied and probes answered: ``model`` (the simulator), ``kind`` and ``existing`` (live).
May import ``netpol`` and ``probes``; never ``gim``, ``suite``, ``verify`` or ``commands``."""
