// Compile test: the generated headers as C++ (extern "C", static_assert, no designated
// initialisers), with every warning an error. Not run, only compiled.
#include "common.shoal.h"
#include "features.shoal.h"
#include "features2.shoal.h"

int use_everything(Everything_queue *q, Everything_value *v, Journal_pipe *p);

int use_everything(Everything_queue *q, Everything_value *v, Journal_pipe *p)
{
    Everything e = Everything_INIT;
    Defaults d = Defaults_INIT;
    Journal j = Journal_INIT;
    Scalars s = Scalars_INIT;
    int rc = Scalars_set_f_string(&s, "shoal");
    rc |= Scalars_set_f_bytes(&s, "\x01\x02", 2);
    e.scalars = s;
    e.choice_case = Everything_choice_c_int;
    e.choice.c_int = 7;
    rc |= Everything_queue_put(q, &e, SHOAL_MS(10));
    rc |= Everything_value_write(v, &e);
    rc |= Defaults_validate(&d);
    rc |= Journal_pipe_send(p, &j, SHOAL_NOWAIT);
    return rc + (Level_is_valid(e.scalars.f_enum) ? 0 : 1) +
           (Color_name(Color_RED) ? 0 : 1);
}
