package cowfs

// Root names: "v:NAME" for a volume, "s:VOLUME:NAME" for a snapshot.
func volRoot(name string) string { return "v:" + name }

func snapRoot(vol, name string) string { return "s:" + vol + ":" + name }

func snapPrefix(vol string) string { return "s:" + vol + ":" }
