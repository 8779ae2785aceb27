"""The only modules that talk to the kernel (pyroute2, libnftables, mounts, ioctls)."""
