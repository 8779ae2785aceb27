"""The controller: networks, containers, sandboxes, reconcile; generic over network drivers."""
