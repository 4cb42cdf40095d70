# shellcheck shell=bash
# Sourced by the peer test runners: each writes its own section of
# bench/results/peer-tests.md, between "<!-- NAME -->" and "<!-- /NAME -->"
# lines, and leaves the others as they are.
#   record_section NAME < CONTENT
record_section() {
	local file=$FPB_REPO/bench/results/peer-tests.md name=$1 body new
	body=$(cat)
	[ -f "$file" ] || printf '%s\n' "# Peer test suites" "" \
		"Made by \`make peer-tests\`: test suites no one here wrote, run against" \
		"our code.  Not part of \`make check\`, which runs quick subsets of them." > "$file"
	if grep -qx "<!-- $name -->" "$file"; then
		grep -qx "<!-- /$name -->" "$file" || die "$file: <!-- $name --> has no end marker"
		new=$(BODY=$body awk -v name="$name" '
			$0 == "<!-- " name " -->" { print; print ENVIRON["BODY"]; skip = 1; next }
			$0 == "<!-- /" name " -->" { skip = 0 }
			!skip' "$file")
	else
		new=$(cat "$file"; printf '\n<!-- %s -->\n%s\n<!-- /%s -->' "$name" "$body" "$name")
	fi
	printf '%s\n' "$new" > "$file"
}
