/*
 * Landlock confinement (sandbox.c).
 */
#ifndef SANDBOX_H
#define SANDBOX_H

/*
 * Confine this process (and its future children) to read-write beneath
 * the paths of rw, read-only beneath ro (both NULL-terminated, may be
 * NULL; missing paths are skipped) and, where the kernel restricts the
 * network, TCP connections to connect_port only (0: none).  Returns 0,
 * also where Landlock is missing, or -1 with the reason logged.
 */
int	 sandbox_apply(const char *role, const char *const rw[],
	    const char *const ro[], int connect_port);

#endif
