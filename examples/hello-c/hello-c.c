/* Sample program of the hello-c package (koji-adjutant examples). */
#include <stdio.h>

#ifdef HAVE_GREET
#include <greet.h>
#endif

int main(void)
{
#ifdef HAVE_GREET
    printf("%s (from hello-c)\n", greet());
#else
    puts("Hello from hello-c");
#endif
    return 0;
}
