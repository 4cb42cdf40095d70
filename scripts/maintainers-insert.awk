# Insert the entry in file SNIPPET into a MAINTAINERS file (stdin) in
# alphabetical order of the entry titles, as the file asks.  The file is
# not perfectly sorted, so the search starts at the first title with the
# same initial as ours.
BEGIN {
	while ((getline l < SNIPPET) > 0)
		entry = entry l "\n"
	split(entry, first, "\n"); title = first[1]
}
{ lines[NR] = $0 }
END {
	for (i = 1; i <= NR; i++) {
		if (lines[i] == "Maintainers List") in_list = 1
		is_title = in_list && lines[i - 1] == "" && lines[i + 1] ~ /^[A-Z]:\t/
		if (is_title && substr(lines[i], 1, 1) == substr(title, 1, 1))
			in_region = 1
		if (!done && is_title && in_region && lines[i] > title) {
			printf "%s\n", entry
			done = 1
		}
		print lines[i]
	}
	if (!done) { print "no place for " title " in MAINTAINERS" > "/dev/stderr"; exit 1 }
}
