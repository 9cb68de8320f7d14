# lib.sh: what engine.sh and images.sh share (sourced, not run).
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

mirror() {  # the Debian mirror the system itself uses (deb822 or one-line format)
  local m
  m=$( { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{for(i=2;i<=NF;i++) print $i}'
         grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
           | awk '{for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; break}}'; } \
       | grep -E '/debian/?$' | head -1 || true)
  [ -n "$m" ] || { echo "no Debian mirror found in /etc/apt sources; set MIRROR=" >&2; return 1; }
  echo "$m"
}
