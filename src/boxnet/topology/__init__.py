"""Seeing the network (issue 19): one pure model of what boxnet recorded next to what the kernel
holds (`model.py`), its renderers (`render.py` for json/dot, `svg.py`, `page.py` for the live
HTML page) and `explain.py`, which evaluates a packet against boxnet's firewall intents.
`probe.py` sends one real packet with nftables tracing on. Only `probe.py` touches the kernel;
everything else is a pure function of its inputs.
"""
