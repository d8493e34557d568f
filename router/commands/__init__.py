"""The operator's sub-commands of ``signalroute`` (check, stats, explain) and what every
command's help is made with."""
