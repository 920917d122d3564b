"""What operators see and bound: the access log, the admin port, metrics, request limits
and the ``Expect: 100-continue`` gate."""
