#!/bin/sh
# The project's tests, printed in the TAP-like format `node --test` uses so kazi
# can count them (# pass / # fail).
pass=0; fail=0
check() {
  got=$(sh ./calc.sh "$1" "$2" "$3")
  if [ "$got" = "$4" ]; then pass=$((pass + 1)); echo "ok - calc $1 $2 $3 = $4"
  else fail=$((fail + 1)); echo "not ok - calc $1 $2 $3: expected $4, got $got"; fi
}
check add 2 3 5
check add 10 -4 6
check mul 3 4 12
echo "# tests $((pass + fail))"
echo "# pass $pass"
echo "# fail $fail"
[ "$fail" -eq 0 ]
