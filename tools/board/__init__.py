"""Tools for people with a board: deploy, flash, bond table, REPL, serial ports."""
