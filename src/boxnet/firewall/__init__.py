"""Firewall backends: neutral intents (base.py) rendered for nftables or iptables."""
