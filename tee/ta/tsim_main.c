/* Simulated TEE: main() of every simulated TA executable (alone, so tests can link the rest). */
#include "tee/ta/tsim_internal.h"

int main(void)
{
    return tsim_ta_main();
}
