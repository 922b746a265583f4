/* Learning-rate schedules, as keras/src/optimizers/schedules/
 * learning_rate_schedule.py defines them. The optimizer calls the schedule
 * with its iteration count BEFORE the update, so the first update uses
 * step 0 and the initial rate. */
#include <math.h>

#include "cnnviz/train.h"

float cnnviz_schedule_lr(const cnnviz_schedule *s, long step) {
    if (s->kind == CNNVIZ_DECAY_NONE) return (float)s->initial;
    double p = (double)step / s->decay_steps;
    if (s->staircase) p = floor(p);
    switch (s->kind) {
    case CNNVIZ_DECAY_INVERSE_TIME: /* InverseTimeDecay */
        return (float)(s->initial / (1.0 + s->rate * p));
    case CNNVIZ_DECAY_EXPONENTIAL: /* ExponentialDecay */
        return (float)(s->initial * pow(s->rate, p));
    case CNNVIZ_DECAY_NONE:
        break;
    }
    return (float)s->initial;
}
