/* libgreet: a header-only sample library (koji-adjutant examples). */
#ifndef GREET_H
#define GREET_H

static inline const char *greet(void)
{
    return "Hello from libgreet";
}

#endif /* GREET_H */
