"""The CLI's commands, one module per stage; each module lists its click commands in `COMMANDS`."""
