# The reference's Get-Process, on a busybox guest: what runs, and what the temporary disk holds.
echo "processes running: $(ps | wc -l)"
ps | head -n 8
echo "temporary disk /mnt/resource: $(ls /mnt/resource | tr '\n' ' ')"
