/*
 * test_darknet_fixture.c - a model trained by upstream darknet predicts here
 * exactly as upstream darknet printed it (tests/fixtures/darknet-mnist-lenet):
 * the same five labels in the same order with the same percentages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet/image.h"
#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "dnn/dnn.h"
#include "tests/helpers/fixtures.h"

static void test_predicts_like_upstream(void **state)
{
    (void)state;
    char dir[4096], path[8192];
    fixture_dir("darknet-mnist-lenet", dir, sizeof dir);
    struct dk_error err = {{0}};
    struct dk_model model = {0};
    snprintf(path, sizeof path, "%s/mnist_lenet.cfg", dir);
    if (dk_parse_network(path, &model, &err) != 0)
        fail_msg("%s", err.msg);
    struct dnn_net_config cfg = model.net;
    cfg.batch = 1;
    cfg.subdivisions = 1;
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, model.specs, model.n, false, 1), DNN_OK);
    snprintf(path, sizeof path, "%s/mnist_lenet.weights", dir);
    if (dk_weights_load_all(net, path, &err) != 0)
        fail_msg("%s", err.msg);

    /* expected-top5.txt: "== images/NAME.png" then five "%5.2f%%: label" lines. */
    snprintf(path, sizeof path, "%s/expected-top5.txt", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512], got[512];
    int images = 0, lines = 0;
    int idx[5];
    const float *pred = NULL;
    int k = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "== ", 3) == 0) {
            struct dk_image im = {0}, r = {0};
            snprintf(path, sizeof path, "%s/%s", dir, line + 3);
            if (dk_image_load(path, cfg.c, &im, &err) != 0 ||
                dk_image_prepare_predict(&im, cfg.w, cfg.h, &r, &err) != 0)
                fail_msg("%s", err.msg);
            pred = dnn_network_predict(net, r.data);
            dnn_top_k(pred, 10, 5, idx);
            dk_image_free(&im);
            dk_image_free(&r);
            images++;
            k = 0;
            continue;
        }
        assert_non_null(pred);
        assert_true(k < 5);
        /* names.list is 0..9, so the label printed is the index. */
        snprintf(got, sizeof got, "%5.2f%%: %d", (double)pred[idx[k]] * 100, idx[k]);
        if (strcmp(got, line) != 0)
            fail_msg("image %d line %d: expected '%s', got '%s'", images, k, line, got);
        k++;
        lines++;
    }
    fclose(f);
    assert_int_equal(images, 12);
    assert_int_equal(lines, 60);
    dnn_network_free(net);
    dk_model_free(&model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predicts_like_upstream),
    };
    return cmocka_run_group_tests_name("darknet fixture", tests, NULL, NULL);
}
