"""boxnet-cni: the CNI plugin (issue 18). Standard library only, so it starts fast: a runtime
runs it once per ADD and DEL."""
