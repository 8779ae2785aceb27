"""`make demo`: the tutorial, live, in a throwaway lab (see boxnet.demo.script)."""
